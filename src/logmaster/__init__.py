"""LogMaster: syslog collection, a signed daily archive and Law 5651 compliance in one package."""

__version__ = "0.1.0"
