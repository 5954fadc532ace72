"""The local stack: the real servers clinops talks to, run as local processes."""
