/** Keeps a server running until SIGINT or SIGTERM, then closes it. */
export async function runUntilSignal(close: () => Promise<void>): Promise<number> {
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await close();
  return 0;
}
