"""MCP clients from the npm registry that the tests drive (``package.json`` and its lock file pin them).

``inspector.py`` installs them with ``npm ci`` on first use and runs the MCP Inspector's CLI;
``browser.py`` plays the person at the browser for it.
"""
