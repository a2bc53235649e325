import sys

from thinkedit.servers.cli import main

sys.exit(main())
