"""`python -m hfo_drill` (`make demo`): the whole-system failover drill, see hfo_drill.demo."""

import sys

from hfo_drill.demo import main

sys.exit(main())
