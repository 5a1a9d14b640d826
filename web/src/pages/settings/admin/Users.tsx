import { useState } from "react";
import { useForm } from "react-hook-form";
import { useTranslation } from "react-i18next";

import { QueryState } from "@/components/page/QueryState";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { useMe } from "@/hooks/useMe";
import { useFormat } from "../format";
import { useCreateUser, useUpdateUser, useUsers, type Role, type User } from "../queries";
import { described, ErrorText, Field, Select } from "@/components/page/form";

const roles: Role[] = ["user", "admin"];
const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$/;

interface UserValues {
  username: string;
  password: string;
  role: Role;
}

function CreateUser({ onDone }: { onDone: () => void }) {
  const { t } = useTranslation("settings");
  const create = useCreateUser();
  const {
    register,
    handleSubmit,
    formState: { errors, isSubmitting },
  } = useForm<UserValues>({ defaultValues: { username: "", password: "", role: "user" } });
  const onSubmit = handleSubmit(async (values) => {
    const created = await create
      .mutateAsync({ username: values.username.trim(), password: values.password, role: values.role })
      .catch(() => null);
    if (created) onDone();
  });
  return (
    <form
      onSubmit={(event) => void onSubmit(event)}
      aria-labelledby="user-form-heading"
      className="flex flex-col gap-3 rounded-lg border p-4"
      noValidate
    >
      <h3 id="user-form-heading" className="font-medium">
        {t("users.create")}
      </h3>
      <div className="grid gap-3 sm:grid-cols-3">
        <Field id="user-name" label={t("users.username")} hint={t("users.usernameHint")} error={errors.username?.message}>
          <Input
            {...described("user-name", true, errors.username?.message)}
            autoComplete="off"
            {...register("username", {
              required: t("form.required"),
              pattern: { value: USERNAME, message: t("users.usernameInvalid") },
            })}
          />
        </Field>
        <Field id="user-password" label={t("users.password")} hint={t("password.newHint", { count: 8 })} error={errors.password?.message}>
          <Input
            {...described("user-password", true, errors.password?.message)}
            type="password"
            autoComplete="new-password"
            {...register("password", {
              required: t("form.required"),
              minLength: { value: 8, message: t("password.tooShort", { count: 8 }) },
            })}
          />
        </Field>
        <Field id="user-role" label={t("users.role")}>
          <Select id="user-role" {...register("role")}>
            {roles.map((role) => (
              <option key={role} value={role}>
                {t(`roles.${role}`)}
              </option>
            ))}
          </Select>
        </Field>
      </div>
      <ErrorText error={create.error} />
      <div className="flex gap-2">
        <Button type="submit" disabled={isSubmitting}>
          {t("users.save")}
        </Button>
        <Button type="button" variant="outline" onClick={onDone}>
          {t("form.cancel")}
        </Button>
      </div>
    </form>
  );
}

function UserRow({ user, self }: { user: User; self: boolean }) {
  const { t } = useTranslation("settings");
  const format = useFormat();
  const update = useUpdateUser();
  return (
    <tr className="border-t align-top">
      <th scope="row" className="py-2 pr-3 text-left font-medium">
        {user.username}
        {self && <span className="text-muted-foreground ml-2 text-xs font-normal">{t("users.you")}</span>}
      </th>
      <td className="py-2 pr-3">
        <Select
          aria-label={t("users.roleOf", { name: user.username })}
          className="w-32"
          value={user.role}
          disabled={update.isPending || self}
          onChange={(event) => update.mutate({ id: user.id, change: { role: event.target.value as Role } })}
        >
          {roles.map((role) => (
            <option key={role} value={role}>
              {t(`roles.${role}`)}
            </option>
          ))}
        </Select>
      </td>
      <td className="py-2 pr-3">
        <Badge variant={user.disabled ? "destructive" : "secondary"}>
          {user.disabled ? t("users.disabled") : t("users.active")}
        </Badge>
      </td>
      <td className="text-muted-foreground py-2 pr-3 text-xs">
        {user.last_login_at ? format.dateTime(user.last_login_at) : t("users.never")}
      </td>
      <td className="py-2">
        {!self && (
          <Button
            size="sm"
            variant="outline"
            disabled={update.isPending}
            aria-label={
              user.disabled
                ? t("users.enableNamed", { name: user.username })
                : t("users.disableNamed", { name: user.username })
            }
            onClick={() => update.mutate({ id: user.id, change: { disabled: !user.disabled } })}
          >
            {user.disabled ? t("users.enable") : t("users.disable")}
          </Button>
        )}
        <ErrorText error={update.error} />
      </td>
    </tr>
  );
}

/** `/settings/users` (admins): every user, created, given a role, disabled or enabled again. */
export function Users() {
  const { t } = useTranslation("settings");
  const users = useUsers();
  const me = useMe();
  const [adding, setAdding] = useState(false);
  return (
    <div className="flex flex-col gap-6">
      <h2 className="text-xl font-medium">{t("nav.users")}</h2>
      {adding ? (
        <CreateUser onDone={() => setAdding(false)} />
      ) : (
        <Button variant="outline" size="sm" className="self-start" onClick={() => setAdding(true)}>
          {t("users.create")}
        </Button>
      )}
      <QueryState isPending={users.isPending} error={users.error} isEmpty={users.data?.length === 0} empty={t("users.none")}>
        <div className="overflow-x-auto">
          <table className="w-full text-sm">
            <caption className="sr-only">{t("users.caption")}</caption>
            <thead>
              <tr className="text-muted-foreground text-left">
                <th scope="col" className="py-1 pr-3 font-medium">
                  {t("users.username")}
                </th>
                <th scope="col" className="py-1 pr-3 font-medium">
                  {t("users.role")}
                </th>
                <th scope="col" className="py-1 pr-3 font-medium">
                  {t("users.state")}
                </th>
                <th scope="col" className="py-1 pr-3 font-medium">
                  {t("users.lastLogin")}
                </th>
                <th scope="col" className="py-1 font-medium">
                  <span className="sr-only">{t("users.actions")}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {users.data?.map((user) => (
                <UserRow key={user.id} user={user} self={user.id === me.data?.id} />
              ))}
            </tbody>
          </table>
        </div>
      </QueryState>
    </div>
  );
}
