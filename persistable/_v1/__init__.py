"""Compatibility with persistable 1.x: its names, its md5 file names, and adopting its caches.

Nothing here is imported by ``import persistable`` except the small mixins the core
classes inherit (:mod:`persistable._v1._encodable`); the md5 and adoption code loads
on first use.
"""
