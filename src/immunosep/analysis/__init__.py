"""Analysis datasets (ADSL, ADSOFA, ADTTE, ADAE) derived from a locked store."""
