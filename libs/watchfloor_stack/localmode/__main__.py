import sys

from watchfloor_stack.localmode.cli import main

sys.exit(main())
