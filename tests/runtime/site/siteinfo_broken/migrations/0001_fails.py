"""A migration that fails for real, as a bad data migration would."""
from django.db import migrations


def fail(apps, schema_editor):
    raise RuntimeError("siteinfo_broken.0001_fails: this migration fails on purpose")


class Migration(migrations.Migration):
    dependencies = [("siteinfo_v2", "0001_initial")]
    operations = [migrations.RunPython(fail)]
