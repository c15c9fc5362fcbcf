/** pyport's version, recorded in every manifest it writes. Keep in step with package.json. */
export const PYPORT_VERSION = "0.1.0";
