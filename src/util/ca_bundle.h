/*
 * ca_bundle — where the trusted certificate authorities are, for libcurl.
 *
 * libcurl looks where the system that built it keeps them (Debian:
 * /etc/ssl/certs/ca-certificates.crt). A binary carried to another system
 * (the Lambda zip, on Amazon Linux: /etc/pki/tls/certs/ca-bundle.crt) must
 * look there instead, or every HTTPS call fails. SSL_CERT_FILE, as OpenSSL
 * reads it, wins.
 */
#ifndef TASKD_CA_BUNDLE_H
#define TASKD_CA_BUNDLE_H

/*
 * SSL_CERT_FILE when set, else the first bundle that exists of the known
 * places, else NULL (leave libcurl's own default). Reads the file system;
 * call it once per client.
 */
const char *ca_bundle_path(void);

#endif
