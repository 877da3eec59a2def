"""Publishing what a build made: files replaced as sets, pages, assets, the manifest.

``outputs`` (where each output lives, replacing a chart's files together), ``pages`` (the
static HTML pages), ``assets`` (the pages' scripts), ``manifest`` and ``storage`` (a Django
storage for web nodes on other machines).
"""
