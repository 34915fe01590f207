# Security: TLS/mTLS and bearer tokens (services/auth, tests/security).
# libssl-dev: libcrypto (SHA-256, random tokens, certificate checks) for the
# build; openssl: the CLI the security tests and the README use to make a CA
# and certificates.
PACKAGES += libssl-dev openssl
