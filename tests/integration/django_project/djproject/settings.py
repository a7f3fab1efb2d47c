"""Settings of the Django test project; every path and URL comes from the environment that
tests/integration/test_django.py sets."""

import os

SECRET_KEY = "test-only"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "localhost"]
USE_TZ = True
ROOT_URLCONF = "djproject.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "scoter.contrib.django",
    "scoter.huey.contrib.djhuey",
    "shop",
]
if os.environ.get("DJANGO_PG_SCHEMA"):
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["DJANGO_PG_NAME"],
            "USER": os.environ.get("DJANGO_PG_USER", "postgres"),
            "HOST": os.environ.get("DJANGO_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("DJANGO_PG_PORT", "5432"),
            "OPTIONS": {"options": f"-c search_path={os.environ['DJANGO_PG_SCHEMA']}"},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(os.environ["DJANGO_TEST_DIR"], "django.db"),
        }
    }
SCOTER = {"name": "shop", "url": os.environ["SCOTER_URL"], "worker": {"drain_timeout": 2.0}}
HUEY = {
    "huey_class": "huey.SqliteHuey",
    "name": "shop-huey",
    "filename": os.path.join(os.environ["DJANGO_TEST_DIR"], "huey.db"),
    "immediate": False,
}
