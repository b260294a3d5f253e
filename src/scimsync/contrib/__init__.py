"""Integrations with the frameworks applications that embed scimsync already run.

Each lives in a module of its own, behind an extra: :mod:`scimsync.contrib.celery`
(``pip install 'scimsync[celery]'``). Importing this package imports none of them.
"""

__all__: list[str] = []
