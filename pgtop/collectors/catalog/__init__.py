"""Tables, Vacuum and Indexes: the catalog tabs' data, read without ever waiting on a lock.

In four parts: ``model`` (what is read), ``rules`` (what decides, pure functions),
``reads`` (how it is read cheaply) and ``collectors``.

The usual way to size tables, ``pg_total_relation_size()`` over ``pg_tables``, opens every
relation with AccessShareLock: behind one ACCESS EXCLUSIVE lock (a migration, a
``VACUUM FULL``) the whole query waits, and over 100,000 relations it stats every file on
every refresh. Here, every list comes from ``pg_class``, ``pg_index`` and the statistics
functions, which take no relation lock; sizes are ``relpages`` estimates (what the last
VACUUM, ANALYZE or CREATE INDEX counted). Exact sizes are read only for the rows on screen,
never for a relation that ``pg_locks`` shows locked or queued for ACCESS EXCLUSIVE, and
under a 50 ms ``lock_timeout`` in case a lock arrives in between; a row that could not be
sized keeps its estimate and says so (``size_is_estimate``).

These views are per database, and refresh slowly (``CatalogTarget.interval``); a refresh
reads the rows on screen and the relations created since, and the whole list (the costly
part: the statistics of every relation) only now and then (``LIST_EVERY``). A pane says
what it needs (``CatalogNeeds``: the database, the rows on screen, a read of the whole list
or of exact sizes now); the three collectors share one ``CatalogShared``: the connection to
a database other than the monitoring connection's, and the database size read now and
then. Everything that decides something (autovacuum thresholds, duplicate
indexes, the xmin horizon order) is a pure function, tested without a server.
"""

from pgtop.collectors.catalog.collectors import *  # noqa: F403
from pgtop.collectors.catalog.model import *  # noqa: F403
from pgtop.collectors.catalog.reads import *  # noqa: F403
from pgtop.collectors.catalog.rules import *  # noqa: F403
