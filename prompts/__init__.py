"""Jinja2 prompt templates, shipped as package data so they load from a wheel too.

system.j2  the role, the two improvement mechanisms and the answer format
propose.j2 the space, the baseline with its statistics, the frontier and the history
repair.j2  sent back with the exact validation errors when an answer is rejected
"""
