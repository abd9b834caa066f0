"""Pipeline stages: embed, neighbours, label, refine, cluster, evaluate.

Each stage is a small module that takes plain arrays and backend objects, so it
can be tested with fakes and swapped without touching the others.
"""
