"""Build-time helpers of the documentation site (used by ``mkdocs.yml``'s hook, not shipped).

- :mod:`docsgen.api_pages`: API reference pages generated from the packages' export tables.
- :mod:`docsgen.notebook`: runs a percent-format script cell by cell, capturing output and plots.
- :mod:`docsgen.figures`: the pictures of the synthetic-world guide, drawn from the code.
- :mod:`docsgen.hooks`: the mkdocs hook that runs all of the above during ``mkdocs build``.
"""
