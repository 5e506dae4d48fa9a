import sys

from watchfloor_stack.compose.cli import main

sys.exit(main())
