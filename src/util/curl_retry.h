/*
 * curl_retry — which failed libcurl transfers are worth trying again, for the clients that
 * retry (the AWS calls, the OTLP exporter).
 */
#ifndef TASKD_CURL_RETRY_H
#define TASKD_CURL_RETRY_H

#include <curl/curl.h>
#include <stdbool.h>

/*
 * Whether a transfer that failed with cc may go through when tried again: the network or the
 * server (unreachable, slow, a connection cut, a reply garbled) or taskd's own want of memory.
 * Not a URL libcurl cannot use, a certificate it does not trust, nor an abort: those fail the
 * same way every time.
 */
static inline bool curl_transient(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_AGAIN:
    case CURLE_OUT_OF_MEMORY:
        return true;
    default:
        return false;
    }
}

#endif
