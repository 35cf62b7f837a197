"""The install pipeline, one module per stage.

Every install goes the same way, whatever the source:

1. :mod:`._prepare`: acquire the source (a clone, a local project, a wheel, a name on an
   index) and build a local project into a wheel: a requirement to resolve, or content to copy.
2. :mod:`._fetch`: resolve to pins with hashes, fetch the chosen files into the wheelhouse
   (verified), build the sdists the operator allowed.
3. :mod:`._venv`: create the venv, install exactly those files with ``--require-hashes``, check
   what the install put outside site-packages and which ``*.dist-info`` it made, share bytecode.
4. :mod:`._generation`: all of that inside a new generation; write its metadata, then switch
   the pointer (:class:`isolator.store._generations.Generations`).

:mod:`._installer` runs the stages for install, upgrade and reinstall, and removes plugins.
"""
