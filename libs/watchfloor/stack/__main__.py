import sys

from watchfloor.stack.cli import main

sys.exit(main())
