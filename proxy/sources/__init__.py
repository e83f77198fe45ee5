"""Where source images come from (thumbor's ``loaders/``): one small interface, one file
per kind of source."""
