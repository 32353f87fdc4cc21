"""Django's sqlite backend with transactions that take the write lock when they begin (BEGIN IMMEDIATE).

sqlite stands in for the shared Postgres database in the serving tests. With Django's plain BEGIN (deferred), a
transaction that reads before it writes deadlocks with another one doing the same: both hold sqlite's shared lock,
one asks for the write lock and gets "database is locked" at once (sqlite's busy timeout does not apply to that
lock upgrade). django-multisite's Alias.save_base does exactly that (full_clean's SELECTs, then the INSERT, inside
get_or_create's transaction): when the site processes of a multi-project release start together, one of them is
left with a Site row but no canonical Alias and answers 500 (Alias.DoesNotExist) until it is restarted. Postgres
locks rows, not the database, and lets both go on; BEGIN IMMEDIATE makes sqlite queue the second writer instead
(up to the busy timeout settings.py sets), which is the behaviour the tests stand it in for.
"""
from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    def _start_transaction_under_autocommit(self) -> None:
        self.cursor().execute("BEGIN IMMEDIATE")
