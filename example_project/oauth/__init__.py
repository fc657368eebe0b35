"""The example's authorization server: django-oauth-toolkit, configured and extended through its hooks."""
