"""``python -m iotlab.ingest serve --mqtt mqtt://HOST:PORT --store URL`` (= ``iotlab serve``)."""

import sys

if __name__ == "__main__":
    from iotlab._cli_serve import main  # the command line sits above the service it runs

    sys.exit(main())
