"""The test suite. Property tests have no deadline: the same example can take ten times
longer on a busy 2-core CI machine, and a deadline there only makes a test flaky."""

from hypothesis import settings

settings.register_profile("logalyse", deadline=None)
settings.load_profile("logalyse")
