"""Reason texts shared by every path that refuses a row (DataFrames, CSV files, MQTT).

One constant per reason, so a user who reads a reason in a rejected-rows file, in
``IngestResult.rejected`` or in the dead letters can search for the same words. This
module imports nothing: the MQTT receiver process uses it without loading pandas.
"""

__all__ = ["NAIVE_TIMESTAMP"]

#: A timestamp without a time zone is refused, never guessed (guessing shifts data).
NAIVE_TIMESTAMP = "naive timestamp: give a time zone"
