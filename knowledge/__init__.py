"""What is true about the world: FAQ from the circulars, agencies, administrative units.

This package imports nothing from `dialogs` or `bot`.
"""
