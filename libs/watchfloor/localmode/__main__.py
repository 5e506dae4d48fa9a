import sys

from watchfloor.localmode.cli import main

sys.exit(main())
