"""The store: acquisition, resolution, the wheelhouse, the bytecode pool, the backends (uv,
virtualenv + pip), interpreters, builds in the sandbox, generations, lock files."""
