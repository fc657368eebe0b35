"""MCP clients from the npm registry that the tests drive (``package.json`` and its lock file pin them).

``node.py`` installs them with ``npm ci`` on first use and runs the MCP Inspector's CLI and
``ts_agent.mjs`` (an agent on the TypeScript SDK client); ``browser.py`` plays the person at the
browser for both.
"""
