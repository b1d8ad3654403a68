"""Developer tools kept in the repository but out of the installed ``pds`` package."""
