import sys

from intentlocal.cli import main

sys.exit(main())
