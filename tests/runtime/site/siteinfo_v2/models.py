from django.db import models


class Release2Marker(models.Model):
    """A table that exists only once release 2's migration ran: proves the migrate Job really migrated."""

    note = models.CharField(max_length=50, default="")
