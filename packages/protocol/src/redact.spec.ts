import { describe, expect, it } from 'vitest';
import { redactUrlCredentials } from './redact.js';

describe('redactUrlCredentials', () => {
  it('hides user and password of every URL in a text, and leaves the rest', () => {
    expect(redactUrlCredentials('ffmpeg exited with 1 on rtsp://admin:s3cret@10.0.0.5:554/stream1')).toBe('ffmpeg exited with 1 on rtsp://***@10.0.0.5:554/stream1');
    expect(redactUrlCredentials('mqtt://hub:p%40ss@broker:1883 and postgres://u:pw@db/x')).toBe('mqtt://***@broker:1883 and postgres://***@db/x');
    expect(redactUrlCredentials('http://user@cam/snap.jpg')).toBe('http://***@cam/snap.jpg');
    expect(redactUrlCredentials('http://cam/snap.jpg?x=a@b mail me@example.com')).toBe('http://cam/snap.jpg?x=a@b mail me@example.com');
    expect(redactUrlCredentials('no url here')).toBe('no url here');
  });
});
