export function demoCommand(_o: { fast: boolean }): Promise<number> { return Promise.resolve(2); }
