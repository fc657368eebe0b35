"""Test settings plus the enforcement test URLs (used by live server processes too)."""

from tests.settings import *  # noqa: F403

ROOT_URLCONF = "tests.enforcement_views"
