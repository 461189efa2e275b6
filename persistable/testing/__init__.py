"""Reusable test suites, so every FileIO and Store implementation is tested the same way."""
