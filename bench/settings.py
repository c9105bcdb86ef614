"""Settings of the API benchmark only: the app's settings plus a URLconf with a floor view.

``bench/api.py`` starts Daphne with ``DJANGO_SETTINGS_MODULE=bench.settings``; the app
never imports this module.
"""

from vaani.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls_with_floor"
