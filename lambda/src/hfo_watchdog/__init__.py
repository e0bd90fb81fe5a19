"""The watchdog: decides, from two independent signals and a lease, where the bot runs."""
