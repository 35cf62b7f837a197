"""For plugin authors: ``ohp validate``, ``ohp new``, ``ohp package``."""
