declare module 'node-webcam' {
  const NodeWebcam: unknown;
  export default NodeWebcam;
}
