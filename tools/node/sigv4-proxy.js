#!/usr/bin/env node
/*
 * sigv4-proxy.js — an S3 SigV4 verifier in front of s3rver, for temel's tests.
 *
 * s3rver 3.7.1 parses SigV4 requests and looks the access key id up, but it
 * does not compute the signature, so a request signed with a wrong secret (or
 * a wrong canonical request) would pass. This proxy recomputes every
 * request's signature with AWS's own implementation (@smithy/signature-v4,
 * independent of temel's src/storage code and of libcurl's) and the same
 * secret, refuses a mismatch the way S3 does (403, <Code>SignatureDoesNotMatch
 * </Code>), and forwards what verifies to s3rver unchanged.
 *
 * Handled: header-signed requests (Authorization: AWS4-HMAC-SHA256) whose
 * x-amz-content-sha256 is the payload's hex SHA-256 (checked against the body:
 * XAmzContentSHA256Mismatch) or UNSIGNED-PAYLOAD; presigned query URLs
 * (X-Amz-Signature, UNSIGNED-PAYLOAD; expiry enforced). Refused as not
 * verifiable: aws-chunked streaming payloads (STREAMING-*), SigV2, anonymous
 * requests — nothing reaches s3rver unverified.
 *
 *   AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… node sigv4-proxy.js <upstream origin> [region]
 *
 * Listens on 127.0.0.1 on a free port and prints "listening <port>" once ready;
 * one line per refused request on stderr (never a key or a signature).
 */
'use strict';
const crypto = require('crypto');
const http = require('http');
const { SignatureV4 } = require('@smithy/signature-v4');
const { Hash } = require('@smithy/hash-node');

const upstream = new URL(process.argv[2] || '');
const region = process.argv[3] || 'us-east-1';
const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
if (!accessKeyId || !secretAccessKey) {
    process.stderr.write('sigv4-proxy: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are needed\n');
    process.exit(2);
}
const signer = new SignatureV4({
    credentials: { accessKeyId, secretAccessKey },
    region,
    service: 's3',
    sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: false, // S3: the path is signed as sent (encoded once)
    applyChecksum: false,
});
const MAX_SKEW_MS = 15 * 60 * 1000;
const MAX_EXPIRES_S = 7 * 24 * 3600;

class Refusal extends Error {
    constructor(status, code, message) {
        super(message);
        this.status = status;
        this.code = code;
    }
}

const xmlEscape = (s) => String(s).replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

function refuse(req, res, err) {
    process.stderr.write(`sigv4-proxy: ${req.method} ${req.url.split('?')[0]} -> ${err.status} ${err.code}: ${err.message}\n`);
    const body = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>' + xmlEscape(err.code) + '</Code><Message>' +
        xmlEscape(err.message) + '</Message><Resource>' + xmlEscape(req.url.split('?')[0]) + '</Resource><RequestId>' +
        crypto.randomBytes(8).toString('hex').toUpperCase() + '</RequestId></Error>';
    res.writeHead(err.status, { 'Content-Type': 'application/xml', 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
}

// "20261204T211500Z" -> Date
function amzDate(s) {
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s || '');
    if (!m) throw new Refusal(403, 'AccessDenied', 'X-Amz-Date must be YYYYMMDDTHHMMSSZ');
    return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

// "AKID/20261204/us-east-1/s3/aws4_request" -> its parts, checked
function credential(s, date) {
    const p = (s || '').split('/');
    if (p.length !== 5 || p[3] !== 's3' || p[4] !== 'aws4_request')
        throw new Refusal(400, 'AuthorizationHeaderMalformed', 'the credential must be <key>/<date>/<region>/s3/aws4_request');
    if (p[0] !== accessKeyId)
        throw new Refusal(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.');
    if (p[2] !== region) // S3 refuses a scope of another region (a request signed for it would verify below)
        throw new Refusal(400, 'AuthorizationHeaderMalformed', `the region '${p[2]}' is wrong; expecting '${region}'`);
    if (p[1] !== date.toISOString().slice(0, 10).replace(/-/g, ''))
        throw new Refusal(403, 'SignatureDoesNotMatch', 'the credential scope date is not the request date');
}

// the raw query as name -> decoded value(s), in the shape the signer takes
function parseQuery(raw) {
    const q = {};
    if (!raw) return q;
    for (const part of raw.split('&')) {
        if (!part) continue;
        const i = part.indexOf('=');
        const k = decodeURIComponent(i < 0 ? part : part.slice(0, i));
        const v = i < 0 ? '' : decodeURIComponent(part.slice(i + 1));
        if (k in q) q[k] = [].concat(q[k], v);
        else q[k] = v;
    }
    return q;
}

// only the headers the client signed, with the values it sent
function signedHeaders(req, list) {
    const h = {};
    for (const name of list) {
        const v = req.headers[name];
        if (v === undefined) throw new Refusal(403, 'SignatureDoesNotMatch', `signed header ${name} is missing`);
        h[name] = Array.isArray(v) ? v.join(',') : v;
    }
    return h;
}

async function verify(req, body) {
    const [path, rawQuery] = req.url.split(/\?(.*)/s);
    const query = parseQuery(rawQuery);
    const base = { method: req.method, protocol: 'http:', hostname: '127.0.0.1', path, body };
    const auth = req.headers.authorization;
    if ('X-Amz-Signature' in query) { // presigned URL
        if (query['X-Amz-Algorithm'] !== 'AWS4-HMAC-SHA256')
            throw new Refusal(400, 'AuthorizationQueryParametersError', 'X-Amz-Algorithm must be AWS4-HMAC-SHA256');
        const date = amzDate(query['X-Amz-Date']);
        credential(query['X-Amz-Credential'], date);
        const expires = Number(query['X-Amz-Expires']);
        if (!Number.isInteger(expires) || expires < 1 || expires > MAX_EXPIRES_S)
            throw new Refusal(400, 'AuthorizationQueryParametersError', 'X-Amz-Expires must be 1..604800 seconds');
        const list = String(query['X-Amz-SignedHeaders'] || '').split(';');
        const rest = {};
        for (const k of Object.keys(query))
            if (!/^X-Amz-(Algorithm|Credential|Date|Expires|SignedHeaders|Signature|Security-Token)$/.test(k)) rest[k] = query[k];
        const headers = { ...signedHeaders(req, list), 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' };
        const keep = new Set(Object.keys(headers)); // the client kept them as headers: none moves to the query
        const signed = await signer.presign({ ...base, query: rest, headers, body: undefined }, {
            signingDate: date, expiresIn: expires, signableHeaders: new Set(list),
            unsignableHeaders: new Set(['x-amz-content-sha256']), unhoistableHeaders: keep,
        });
        if (signed.query['X-Amz-SignedHeaders'] !== query['X-Amz-SignedHeaders'] ||
            signed.query['X-Amz-Signature'] !== query['X-Amz-Signature'])
            throw new Refusal(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
        if (Date.now() > date.getTime() + expires * 1000) // checked after the signature: an altered expiry is a mismatch
            throw new Refusal(403, 'AccessDenied', 'Request has expired');
        return;
    }
    if (!auth) throw new Refusal(403, 'AccessDenied', 'Access Denied (an anonymous request)');
    const m = /^AWS4-HMAC-SHA256 Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([0-9a-f]{64})$/.exec(auth);
    if (!m) throw new Refusal(400, 'AuthorizationHeaderMalformed', 'expected AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…');
    const date = amzDate(req.headers['x-amz-date']);
    credential(m[1], date);
    if (Math.abs(Date.now() - date.getTime()) > MAX_SKEW_MS)
        throw new Refusal(403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.');
    const sha = req.headers['x-amz-content-sha256'];
    if (!sha) throw new Refusal(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
    if (sha.startsWith('STREAMING-'))
        throw new Refusal(501, 'NotImplemented', 'this verifier does not check aws-chunked payload signatures');
    if (sha !== 'UNSIGNED-PAYLOAD' && sha !== crypto.createHash('sha256').update(body).digest('hex'))
        throw new Refusal(400, 'XAmzContentSHA256Mismatch', 'The provided \'x-amz-content-sha256\' header does not match what was computed.');
    const list = m[2].split(';');
    const signed = await signer.sign({ ...base, query, headers: signedHeaders(req, list) },
        { signingDate: date, signableHeaders: new Set(list) });
    if (signed.headers.authorization !== auth.replace(/,\s*/g, ', '))
        throw new Refusal(403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.');
}

const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
        const body = Buffer.concat(chunks);
        try {
            await verify(req, body);
        } catch (err) {
            if (err instanceof Refusal) return refuse(req, res, err);
            return refuse(req, res, new Refusal(500, 'InternalError', String(err && err.message || err)));
        }
        const headers = { ...req.headers, 'content-length': body.length };
        delete headers['transfer-encoding']; // the body was read whole
        const up = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
            (ur) => {
            res.writeHead(ur.statusCode, ur.headers);
            ur.pipe(res);
        });
        up.on('error', (e) => refuse(req, res, new Refusal(502, 'InternalError', `s3rver: ${e.message}`)));
        up.end(body);
    });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
process.on('SIGTERM', () => process.exit(0));
