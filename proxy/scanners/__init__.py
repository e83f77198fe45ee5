"""Optional malware scanning of source bytes, behind one small interface."""
