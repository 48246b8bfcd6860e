/** The Docker path: build the lab image, run one labelled container, run `lab` inside it. */
export { CONTAINER_NAME, DEFAULT_IMAGE, LABEL, LABEL_FILTER, WORKDIR, connectDocker } from './engine.js';
export { findLabContainer, hostConfig, type LabContainer } from './container.js';
export { buildImage, inspectImage, removeImage } from './image.js';
export { execCapture, execInteractive, execStream } from './exec.js';
export {
  containerNamespaces,
  dockerDown,
  dockerLab,
  dockerShell,
  dockerStatus,
  dockerVerify,
  type DockerDownResult,
  type DockerStatus,
} from './runner.js';
export { dockerUp, type DockerUpOptions, type DockerUpResult } from './up.js';
