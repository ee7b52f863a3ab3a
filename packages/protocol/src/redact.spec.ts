import { describe, expect, it } from 'vitest';
import { redactUrl, redactUrlCredentials } from './redact.js';

describe('redactUrlCredentials', () => {
  it('hides user and password of every URL in a text, and leaves the rest', () => {
    expect(redactUrlCredentials('ffmpeg exited with 1 on rtsp://admin:s3cret@10.0.0.5:554/stream1')).toBe('ffmpeg exited with 1 on rtsp://***@10.0.0.5:554/stream1');
    expect(redactUrlCredentials('mqtt://hub:p%40ss@broker:1883 and postgres://u:pw@db/x')).toBe('mqtt://***@broker:1883 and postgres://***@db/x');
    expect(redactUrlCredentials('http://user@cam/snap.jpg')).toBe('http://***@cam/snap.jpg');
    expect(redactUrlCredentials('http://admin:p@ss1@127.0.0.1:1/s.jpg: HTTP 401')).toBe('http://***@127.0.0.1:1/s.jpg: HTTP 401');
    expect(redactUrlCredentials('http://cam/snap.jpg?user=admin&password=hunter2&x=1')).toBe('http://cam/snap.jpg?user=admin&password=***&x=1');
    expect(redactUrlCredentials('no url here, mail me@example.com')).toBe('no url here, mail me@example.com');
  });

  it('hides a known URL wherever it appears, even one free text cannot delimit', () => {
    const url = 'http://admin:hun ter2#x@cam/s.jpg';
    expect(redactUrlCredentials(`snapshot ${url}: fetch failed`, [url])).toBe('snapshot http://***@cam/s.jpg: fetch failed');
  });
});

describe('redactUrl', () => {
  it('drops everything up to the last @ of one URL value, whatever the password holds', () => {
    for (const password of ['pa#ss9', 'pa/ss9', 'pa?ss9', 'hun ter2', 'p@ss', 'pa%zzss']) {
      const r = redactUrl(`mqtt://u:${password}@127.0.0.1:1883`);
      expect(r).toBe('mqtt://***@127.0.0.1:1883');
    }
    expect(redactUrl('postgres://db/x?sslmode=require&password=pw')).toBe('postgres://db/x?sslmode=require&password=***');
    expect(redactUrl('mqtt://broker:1883')).toBe('mqtt://broker:1883');
  });
});
