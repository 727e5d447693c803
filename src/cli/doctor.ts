/** `lifeboat doctor`: placeholder until the checks land. */
export function doctorCommand(_configFile: string): Promise<number> {
  console.error("lifeboat doctor: not available yet");
  return Promise.resolve(2);
}
