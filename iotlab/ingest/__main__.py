"""``python -m iotlab.ingest serve --mqtt mqtt://HOST:PORT --store URL``."""

import sys

from iotlab.ingest.cli import main

if __name__ == "__main__":
    sys.exit(main())
