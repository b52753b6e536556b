/** A progress bar with its value for assistive technology (0..1; null: not known). */
export function Progress({ value, label }: { value: number | null; label: string }) {
  const shown = value === null ? 0 : Math.min(1, Math.max(0, value));
  return (
    <div
      className="bar"
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={value === null ? undefined : Math.round(shown * 100)}
    >
      <div className="fill" style={{ width: `${shown * 100}%` }} />
    </div>
  );
}
