import sys

from smartscope.cli import main

sys.exit(main())
