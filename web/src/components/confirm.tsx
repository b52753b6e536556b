/**
 * Every destructive action asks first: `const confirm = useConfirm(); if (await confirm({...}))`.
 * A modal <dialog> (focus kept inside, Escape cancels); with `input` it also asks for a text (a
 * reason), answered in place of `true`.
 */
import { createContext, useCallback, useContext, useRef, useState, type ReactNode } from "react";

interface Ask {
  title: string;
  body?: string;
  action: string;
  /** Asks for a text too (e.g. a maintenance reason); the answer is that text. */
  input?: { label: string; required?: boolean };
}
type Answer = boolean | string;
type Confirm = (ask: Ask) => Promise<Answer>;

const ConfirmContext = createContext<Confirm | null>(null);

export function useConfirm(): Confirm {
  const confirm = useContext(ConfirmContext);
  if (!confirm) throw new Error("useConfirm outside ConfirmProvider");
  return confirm;
}

export function ConfirmProvider({ children }: { children: ReactNode }) {
  const dialog = useRef<HTMLDialogElement>(null);
  const [ask, setAsk] = useState<Ask | null>(null);
  const [text, setText] = useState("");
  const resolver = useRef<((answer: Answer) => void) | null>(null);

  const confirm = useCallback<Confirm>((next) => {
    resolver.current?.(false);
    setAsk(next);
    setText("");
    return new Promise<Answer>((resolve) => {
      resolver.current = resolve;
      queueMicrotask(() => dialog.current?.showModal());
    });
  }, []);

  const finish = (answer: Answer) => {
    resolver.current?.(answer);
    resolver.current = null;
    dialog.current?.close();
  };

  return (
    <ConfirmContext value={confirm}>
      {children}
      <dialog
        ref={dialog}
        aria-labelledby="confirm-title"
        onClose={() => {
          resolver.current?.(false);
          resolver.current = null;
        }}
      >
        {ask && (
          <form
            method="dialog"
            onSubmit={(event) => {
              event.preventDefault();
              finish(ask.input ? text : true);
            }}
          >
            <h2 id="confirm-title">{ask.title}</h2>
            {ask.body && <p>{ask.body}</p>}
            {ask.input && (
              <label>
                {ask.input.label}
                <input
                  value={text}
                  required={ask.input.required ?? false}
                  onChange={(event) => setText(event.target.value)}
                  autoFocus
                />
              </label>
            )}
            <div className="actions">
              <button type="button" onClick={() => finish(false)}>
                Cancel
              </button>
              <button type="submit" className="danger" autoFocus={!ask.input}>
                {ask.action}
              </button>
            </div>
          </form>
        )}
      </dialog>
    </ConfirmContext>
  );
}
