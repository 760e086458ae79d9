"""SAE architectures, one per module, behind a name registry (see :mod:`synthsae.saes.registry`)."""
